"""Adapters to the emergency (110/119/120/122) and utility centres (from the linkage issue on)."""
