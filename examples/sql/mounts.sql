-- mounts: every mount of every mount namespace.
-- cel: mounts.map(m, [m.ns_id, m.mountpoint, m.type])
SELECT dump_id, ns_id, mountpoint, type
FROM read_parquet('{{root}}/view=mounts/*/*.parquet', hive_partitioning = true);
