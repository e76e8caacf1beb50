#!/usr/bin/env bash
# `make demo`: a fresh lake, generated data landed and processed, then a summary and SQL.
set -euo pipefail
BIN="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin"
LL="$BIN/lakeline"
HOME_DIR="${LAKELINE_HOME:-.demo}"
DATA="$(dirname "$HOME_DIR")/.demo-data"  # not HOME/..: rm -rf HOME first would break that path
rm -rf "$HOME_DIR" "$DATA"
mkdir -p "$DATA"
export LAKELINE_HOME="$HOME_DIR"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. create a lake in $HOME_DIR"
"$LL" init "$HOME_DIR"

step "2. generate data (value domains of the shipments seed)"
"$LL" gen shipments --count 200000 --out "$DATA/shipments.jsonl" --seed 1
"$LL" gen tracking_events --count 50000 --out "$DATA/tracking_events.jsonl" --seed 2
"$LL" gen invoice_lines --count 2000 --format json --out "$DATA/invoice_lines.json" --seed 3
# a file with problems: bad JSON, a wrong type, an unknown record type, a blank line
cat > "$DATA/dirty.jsonl" <<'JSONL'
{"record_type":"shipments","event_time":"2026-01-05T10:00:00Z","shipment_id":"shp_00000000dirt","origin":"SZX","destination":"SEA","carrier":"UPS","weight_kg":4.2}
{"record_type":"shipments","event_time":"2026-01-05T10:00:00Z","weight_kg":"heavy"}

{"record_type":"parcels","event_time":"2026-01-05T10:00:00Z"}
{"record_type": "shipments", "event_time": oops}
JSONL

step "3. land the files (emits S3-shaped object-created events)"
"$LL" put "$DATA/shipments.jsonl" "$DATA/tracking_events.jsonl" "$DATA/invoice_lines.json" "$DATA/dirty.jsonl" --pipeline shipments
echo "landing the shipments file again (a duplicate):"
"$LL" put "$DATA/shipments.jsonl" --pipeline shipments   # `run` will count it as skipped

step "4. run the pipeline until idle (2 workers)"
"$LL" run --workers 2

step "5. what happened"
"$LL" runs --limit 5
"$LL" status
"$LL" tables

step "6. SQL over the lake"
"$LL" sql "SELECT dt, count(*) AS shipments, round(avg(weight_kg), 2) AS avg_kg FROM silver.shipments GROUP BY dt ORDER BY dt"
"$LL" sql "SELECT carrier, origin, count(*) AS n FROM silver.shipments GROUP BY ALL ORDER BY n DESC LIMIT 5"
"$LL" sql "SELECT sku, sum(quantity) AS units, round(sum(line_total), 2) AS revenue FROM silver.invoice_lines GROUP BY sku ORDER BY sku"
"$LL" sql "SELECT key, line_no, byte_offset, reason_code, message FROM quarantine.rejects ORDER BY key, line_no"

step "7. a batch run of the transactions pipeline, its gate and its promotion"
"$LL" gen transactions --count 20000 --dirty-rate 0.01 --out "$DATA/transactions.csv" --seed 4
"$LL" put "$DATA/transactions.csv" --pipeline transactions
"$LL" run
"$LL" run-summary
"$LL" promote
"$LL" sql "SELECT year, month, count(*) AS rows, round(sum(TransactionAmount), 2) AS amount FROM silver.transactions GROUP BY ALL ORDER BY ALL"
"$LL" sql "SELECT reason_code, count(*) AS n FROM quarantine.rejects WHERE pipeline = 'transactions' GROUP BY ALL ORDER BY n DESC"

step "8. the retail lakehouse: Iceberg table partitioned by days(order_date)"
"$LL" gen retail --out "$DATA/retail"
"$LL" put "$DATA/retail/customers.csv" "$DATA/retail/products.csv" "$DATA/retail/orders.csv" --pipeline retail
"$LL" run
FIRST=$("$LL" sql 'SELECT snapshot_id FROM retail_silver."orders_silver$snapshots"' --csv | tail -1)
"$LL" gen retail --out "$DATA/retail2" --seed 2 --count 1200
"$LL" put "$DATA/retail2/orders.csv" --pipeline retail --key retail/orders/ingest_date=2025-10-01/orders-2.csv
"$LL" run
"$LL" sql "SELECT region, count(*) AS orders, round(sum(sales_amount), 2) AS sales FROM retail_silver.orders_silver GROUP BY region ORDER BY sales DESC"
echo "time travel to the first snapshot ($FIRST):"
"$LL" sql "SELECT count(*) AS orders_then FROM retail_silver.orders_silver FOR VERSION AS OF $FIRST"
"$LL" sql 'SELECT snapshot_id, operation, committed_at FROM retail_silver."orders_silver$snapshots"'
{ "$LL" explain "SELECT sum(sales_amount) FROM retail_silver.orders_silver WHERE order_date = DATE '2025-08-15'" || true; } | head -8  # scan plan only

step "9. totesys: incremental extraction from an OLTP database into a star schema"
"$LL" gen totesys --db "$DATA/totesys.db" --scale 2000
"$LL" extract --pipeline totesys --source "$DATA/totesys.db"
"$LL" run
"$LL" gen totesys --db "$DATA/totesys.db" --mutate
echo "second extraction: only the rows the round changed"
"$LL" extract --pipeline totesys --source "$DATA/totesys.db"
"$LL" run
"$LL" sql "SELECT c.counterparty_legal_name AS counterparty, d.year, d.quarter, sum(f.units_sold * f.unit_price) AS sales FROM gold.fact_sales_order f JOIN gold.dim_counterparty c USING (counterparty_id) JOIN gold.dim_date d ON d.date_id = f.created_date GROUP BY ALL ORDER BY sales DESC LIMIT 5"
"$LL" sql "SELECT sales_order_id, count(*) AS versions, max(units_sold) AS units_now FROM gold.fact_sales_order GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT 3"
"$LL" load

step "10. carbon: the CarbonLake workflow (quality gate, batches, CO2e, lineage)"
"$LL" gen carbon --count 5000 --dirty-rate 0.002 --seed 5 --out "$DATA/activities.csv"
"$LL" put "$DATA/activities.csv" --pipeline carbon
"$LL" run
"$LL" sql "SELECT category, count(*) AS records, round(sum(emissions_output.calculated_emissions.co2e.ar4.amount), 2) AS t_co2e_ar4, round(sum(emissions_output.calculated_emissions.co2e.ar5.amount), 2) AS t_co2e_ar5 FROM gold.emissions GROUP BY ALL ORDER BY t_co2e_ar4 DESC"
"$LL" sql "SELECT line_no, reason_code, message FROM quarantine.rejects WHERE pipeline = 'carbon' ORDER BY line_no LIMIT 4"
echo "lineage of one record, back to its raw file:"
"$LL" lineage trace carbon-data-lake-0005-000000042
echo "the data quality report of the file (open it in a browser):"
find "$HOME_DIR/zones/gold/_quality/results/carbon" -name '*.html'

printf '\nDone. Explore with: LAKELINE_HOME=%s %s sql "…"\n' "$HOME_DIR" "$LL"
printf 'See it in a browser: LAKELINE_HOME=%s %s ui   (runs, rejects, tables, SQL, lineage, quality, workflows)\n' "$HOME_DIR" "$LL"
