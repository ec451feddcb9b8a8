"""Open ASR Leaderboard evaluation: datasets, scoring, reports."""
