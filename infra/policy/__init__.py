"""mldr's policy pack: mandatory rules for any stack of this program (see rules.py)."""
