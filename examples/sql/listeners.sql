-- listeners: listening sockets (TCP, and unix stream sockets, whose state is LISTEN too); a unix socket has no port.
-- cel: sockets.filter(s, s.state == TCP_LISTEN).map(s, [s.local_addr, has(s.local_port) ? dyn(s.local_port) : null])
SELECT dump_id, local_addr, local_port
FROM read_parquet('{{root}}/view=sockets/*/*.parquet', hive_partitioning = true)
WHERE state = 'TCP_LISTEN';
