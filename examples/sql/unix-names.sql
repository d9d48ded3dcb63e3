-- unix-names: named unix sockets.
-- cel: sockets.filter(s, s.family == 1u && s.local_addr != "").map(s, [s.ino, s.local_addr])
SELECT dump_id, ino, local_addr
FROM read_parquet('{{root}}/view=sockets/*/*.parquet', hive_partitioning = true)
WHERE family = 'AF_UNIX' AND local_addr <> '';
