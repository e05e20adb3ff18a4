"""`ccl detect` over inputs of any size: reading files and archives (event_files), preparing lines in
parallel (prepare, ordered_pool), time order beyond memory (external_sort, in_order), the run (detect).
May import ccl.content, ccl.vector and the rest of ccl.detection.
"""
