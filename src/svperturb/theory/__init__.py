"""The papers' formulas: every inequality and closed form as a function of measured quantities."""
