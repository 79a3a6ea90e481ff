"""Safety flags: rules run over members' records, flags for coaches, alerts and escalation (issue 5)."""
