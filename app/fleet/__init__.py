"""The fleet questions (stationary, low battery, offline, distance, daily activity), answered for the whole fleet."""
