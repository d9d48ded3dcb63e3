package duckdbtest

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// TestFleetQuery times the fleet question of issue 14 (executable VMAs per
// dump) over an export folder named by CRITQ_EXPORT_DIR, made beforehand
// with critq export; it skips without one.
func TestFleetQuery(t *testing.T) {
	dir := os.Getenv("CRITQ_EXPORT_DIR")
	if dir == "" {
		t.Skip("CRITQ_EXPORT_DIR not set")
	}
	db := openDB(t)
	start := time.Now()
	rows := sqlRows(t, db, fmt.Sprintf(`SELECT dump_id, count(*) FROM read_parquet('%s/view=vmas/*/*.parquet', hive_partitioning = true) WHERE prot & 4 <> 0 GROUP BY dump_id`, dir))
	t.Logf("%d dumps answered in %v", len(rows), time.Since(start))
}
