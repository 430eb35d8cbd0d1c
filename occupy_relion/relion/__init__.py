"""Everything that knows RELION: locating inputs, versions, output nodes, marker files, summary STAR.

One module per concern; the job driver (:mod:`occupy_relion.job`) strings them together.
"""
