"""RQ workers that build the read models, the signal that wakes them, and the cron safety net."""
