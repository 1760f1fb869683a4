"""积分: the points ledger, its rules, 六不得 breaches and the rewards store (pages come with the
rest of issue 5)."""
