"""Sources: listing inputs by format and indexing their utterances."""
