"""Old import path of the leaderboard's English normaliser: it lives in :mod:`pipeline.text.english`."""

from pipeline.text.english import LeaderboardNormalizer, join_acronyms, load_table

__all__ = ["LeaderboardNormalizer", "join_acronyms", "load_table"]
