"""The weekly Penn Alcohol Craving Scale (DOMAIN.md "Craving", issue 19): 5 items scored 0-6, total 0-30."""
