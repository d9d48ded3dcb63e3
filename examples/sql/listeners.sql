-- listeners: listening TCP sockets.
-- cel: sockets.filter(s, s.state == TCP_LISTEN).map(s, [s.local_addr, s.local_port])
SELECT dump_id, local_addr, local_port
FROM read_parquet('{{root}}/view=sockets/*/*.parquet', hive_partitioning = true)
WHERE state = 'TCP_LISTEN';
