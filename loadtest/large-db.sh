#!/usr/bin/env bash
# Builds a large hookvault database fast, for the backup and restore figures in
# docs/operations.md: the binary creates the schema (so the file is exactly what `serve` makes,
# 1 KiB pages, WAL), then one SQL transaction fills it with realistic rows: processed webhooks
# of about 1.4 KB each (a Discord order embed with a footer of hex noise so pages do not
# compress), their headers, and one order per webhook, one a second up to now (so retention,
# 30 days by default, leaves them alone).
#
#   loadtest/large-db.sh DB [ROWS]      # ROWS 600000 (default) makes about 1.1 GB
#
# Needs the sqlite3 shell (Debian: apt-get install sqlite3) and target/release/hookvault
# (HOOKVAULT=path to use another build). Refuses an existing DB.
set -euo pipefail

db=${1:?usage: loadtest/large-db.sh DB [ROWS]}
rows=${2:-600000}
cd "$(dirname "$0")/.."
hv=${HOOKVAULT:-${CARGO_TARGET_DIR:-target}/release/hookvault}
command -v sqlite3 >/dev/null || { echo "large-db.sh: the sqlite3 shell is required" >&2; exit 2; }
[ -x "$hv" ] || { echo "large-db.sh: no $hv; cargo build --release first" >&2; exit 2; }
[ -e "$db" ] && { echo "large-db.sh: $db exists" >&2; exit 2; }

# Let the binary create and migrate the database, then stop it gracefully.
"$hv" serve --db "$db" --listen 127.0.0.1:0 --ws-listen off >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do
    [ "$(sqlite3 "$db" 'PRAGMA user_version' 2>/dev/null)" = 1 ] && break
    sleep 0.1
done
kill -TERM "$pid"
wait "$pid"

start=$(date +%s)
sqlite3 "$db" >/dev/null <<SQL
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < $rows)
INSERT INTO messages (id, received_at, path, remote_addr, size, state, attempts, finished_at)
SELECT n, now - ($rows - n) * 1000, '/api/v2/webhooks/orders', '203.0.113.' || (n % 250),
       1400, 'processed', 1, now - ($rows - n) * 1000 + 3
FROM seq, (SELECT CAST(strftime('%s', 'now') AS INTEGER) * 1000 AS now);
INSERT INTO bodies (message_id, headers, payload)
SELECT id,
       '{"content-type":"application/json","user-agent":"Discord-Webhook/1.0","x-forwarded-for":"' || remote_addr || '"}',
       CAST(printf('{"embeds":[{"author":{"name":"Order %d"},"title":"Successful checkout","description":"Product\nAir Runner %d\nSize\n%d\nPrice\n\$%d.99\nOrder Number\nLOAD-%d\nEmail\nbuyer%d@example.com\nProfile\nprofile-%d","footer":{"text":"%s"}}]}',
                   id, id % 97, 36 + id % 12, 50 + id % 200, id, id, id % 40, hex(randomblob(450))) AS BLOB)
FROM messages;
INSERT INTO orders (message_id, source_path, order_number, product, amount_cents, currency, email,
                    size, quantity, profile, title, fields, created_at)
SELECT id, path, 'LOAD-' || id, 'Air Runner ' || (id % 97), (50 + id % 200) * 100 + 99, 'USD',
       'buyer' || id || '@example.com', CAST(36 + id % 12 AS TEXT), 1, 'profile-' || (id % 40),
       'Successful checkout',
       '{"Product":"Air Runner ' || (id % 97) || '","Size":"' || (36 + id % 12) || '"}',
       finished_at
FROM messages;
INSERT OR REPLACE INTO counters (name, value) VALUES
    ('received', $rows), ('processed', $rows), ('orders_created', $rows);
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
echo "large-db.sh: $rows webhooks in $db, $(du -m "$db" | cut -f1) MB, in $(( $(date +%s) - start )) s"
