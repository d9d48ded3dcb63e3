-- written-files: regular files open for writing.
-- cel: fds.filter(f, f.kind == "REG" && (f.flags & (O_WRONLY | O_RDWR)) != 0u).map(f, [f.pid, f.fd, f.path])
SELECT dump_id, pid, fd, path
FROM read_parquet('{{root}}/view=fds/*/*.parquet', hive_partitioning = true)
WHERE kind = 'REG' AND flags & 3 <> 0;
