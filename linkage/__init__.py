"""Adapters to the emergency (110/119/120/122) and utility centres (Zhanjiang 12345 rules, art. 14)."""
