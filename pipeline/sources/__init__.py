"""Sources: listing inputs by format (driver) and indexing their utterances (Ray tasks).

``listing`` lists each ``--input`` and splits it into index units; ``index`` runs one Ray read
task per unit and finds repeated ids on Arrow; ``shards`` (Parquet, WebDataset), ``manifest``,
``librispeech`` and ``kaldi`` turn one unit's files into index items (``items.ITEM_SCHEMA``);
``ids`` holds the id rules; ``formats`` the file extensions and format detection.
"""
