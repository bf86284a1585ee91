"""HDF5 shards and merged files: layout, atomic writes, validation, merging, resume checks."""
