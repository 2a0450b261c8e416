"""keel's benchmarks. Run them from the repository root with `python -m bench` (or `make bench`).

Every measurement is reported next to a baseline measured in the same run, so the numbers can
be compared across machines; see `bench/__main__.py` for what is measured and how.
"""
