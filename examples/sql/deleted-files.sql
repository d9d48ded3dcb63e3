-- deleted-files: open files that were unlinked.
-- cel: fds.filter(f, f.deleted).map(f, [f.pid, f.fd, has(f.path) ? dyn(f.path) : null])
SELECT dump_id, pid, fd, path
FROM read_parquet('{{root}}/view=fds/*/*.parquet', hive_partitioning = true)
WHERE deleted;
