"""Which QuestDB functions user SQL may name (an allowlist), and which server names it may not.

Every name QuestDB 9.3.4's `functions()` reports is in exactly one of ALLOWED_FUNCTIONS,
REFUSED_FUNCTIONS or OPERATORS; tests/integration/test_questdb_sql.py compares that with the
running server (snapshot: tests/integration/questdb_functions_9.3.4.txt), so an upgrade that adds a
function fails CI until someone classifies it.

Allowed: pure computations (aggregates, window, math, string, date/time, casts, arrays, geo,
finance, rnd_* generators, sequences) and the table metadata a read-only user may read anyway
(tables(), table_columns(), table_partitions(), wal_tables(): a token that may run SQL can already
read every table, so listing them reveals nothing new). Refused: everything that acts on or
reveals the *server* rather than table data: files and globs on its disk, parquet readers and
importers, other sessions' SQL (query_activity, export_activity), config (reload_config,
current_setting), caches, memory/thread dumps, crash/warning simulation, pools and writer metrics,
WAL waits, `touch`, `rnd_log` (writes log lines), build/version strings beyond version(), the
pg_catalog / information_schema emulation (schema-qualified names are refused as a whole), and
names we did not need and could not vouch for (list, format_type, txid_current, ...).

QuestDB resolves a table-valued function from a bare name, a quoted identifier or even a string in
FROM (`from query_activity`, `from "query_activity"`, `from 'query_activity'`, all checked on the
server), so a refused name is refused as any token, not only before `(`.
"""

from __future__ import annotations


def _names(text: str) -> frozenset[str]:
    """Space-separated names (the lists below read as prose, grouped by kind)."""
    return frozenset(text.split())


_RND = (
    "rnd_bin rnd_boolean rnd_byte rnd_char rnd_date rnd_decimal rnd_double rnd_double_array rnd_float rnd_geohash "
    "rnd_int rnd_interval rnd_ipv4 rnd_long rnd_long256 rnd_short rnd_str rnd_symbol rnd_symbol_weighted "
    "rnd_symbol_zipf rnd_timestamp rnd_timestamp_ns rnd_uuid4 rnd_varchar"
)

ALLOWED_FUNCTIONS = _names(
    # aggregates and window functions
    "approx_count_distinct approx_median approx_percentile arg_max arg_min avg bit_and bit_or bit_xor bool_and "
    "bool_or corr count count_distinct covar_pop covar_samp first first_not_null geomean isordered ksum last "
    "last_not_null max min mode nsum regr_intercept regr_slope stddev stddev_pop stddev_samp string_agg "
    "string_distinct_agg sum var_pop var_samp variance weighted_avg weighted_stddev weighted_stddev_freq "
    "weighted_stddev_rel dense_rank first_value lag last_value lead percent_rank rank row_number "
    # math
    "abs acos asin atan atan2 ceil ceiling cos cot degrees exp floor greatest least ln log pi power radians round "
    "round_down round_half_even round_up sign sin sqrt tan "
    # strings, casts, conditionals
    "base64 concat from_base64 left length length_bytes lower lpad ltrim md5 position quote_ident regexp_replace "
    "replace right rpad rtrim sha1 sha256 size_pretty split_part starts_with strpos substring to_lowercase to_str "
    "to_char to_uppercase trim upper json_extract cast coalesce nullif case switch typeof to_long128 to_long256 "
    "to_uuid "
    # date and time
    "date_trunc dateadd datediff day day_of_week day_of_week_sunday_first days_in_month extract hour "
    "is_leap_year micros millis minute month nanos second week_of_year year now now_ns sysdate systimestamp "
    "systimestamp_ns today tomorrow yesterday timestamp_ceil timestamp_floor to_date to_pg_date to_timestamp "
    "to_timestamp_ns to_timezone to_utc interval interval_start interval_end "
    # sequences and generators
    "long_sequence generate_series timestamp_sequence timestamp_sequence_ns timestamp_shuffle " + _RND + " "
    # arrays
    "array array_avg array_build array_count array_cum_sum array_elem_avg array_elem_max array_elem_min "
    "array_elem_sum array_max array_min array_position array_reverse array_sort array_stddev array_stddev_pop "
    "array_stddev_samp array_sum dim_length dot_product flatten insertion_point matmul shift transpose "
    # geo, network, finance
    "geo_distance_meters geo_within_radius_latlon haversine_dist_deg make_geohash within within_box "
    "within_radius netmask l2price mid spread spread_bps twap vwap wmid "
    # operators QuestDB lists as functions
    "and or not in between like ilike "
    # metadata a read-only user may see anyway (see the module docstring)
    "tables all_tables table_columns table_partitions wal_tables views materialized_views functions keywords "
    "current_database current_schema current_user session_user version"
)

# Names of 9.3.4 `functions()` that are not allowed, plus names other versions or Postgres habits
# may bring (refused even where the server lacks them, so an upgrade cannot quietly enable them).
REFUSED_FUNCTIONS = _names(
    "build cancel_query checkpoint_status current_catalog current_data_id current_schemas current_setting "
    "dump_memory_usage dump_thread_stacks export_activity export_files files flush_query_cache format_type glob "
    "hydrate_table_metadata import_files list memory_metrics parquet_scan pg_advisory_unlock_all pg_attrdef "
    "pg_attribute pg_class pg_database pg_description pg_enum pg_extension pg_get_expr pg_get_keywords "
    "pg_get_partkeydef pg_index pg_inherits pg_is_in_recovery pg_locks pg_namespace pg_postmaster_start_time "
    "pg_proc pg_range pg_roles pg_type query_activity read_parquet reader_pool reload_config rnd_log "
    "simulate_crash simulate_warnings table_storage table_writer_metrics touch txid_current wait_wal_table "
    "wal_transactions writer_pool "
    "information_schema._pg_expandarray information_schema.character_sets information_schema.columns "
    "information_schema.key_column_usage information_schema.questdb_columns information_schema.referential_constraints "
    "information_schema.table_constraints information_schema.tables pg_catalog.age pg_catalog.current_database "
    "pg_catalog.current_schema pg_catalog.current_schemas pg_catalog.pg_attrdef pg_catalog.pg_attribute "
    "pg_catalog.pg_class pg_catalog.pg_database pg_catalog.pg_description pg_catalog.pg_extension "
    "pg_catalog.pg_get_expr pg_catalog.pg_get_keywords pg_catalog.pg_get_partkeydef pg_catalog.pg_get_userbyid "
    "pg_catalog.pg_index pg_catalog.pg_inherits pg_catalog.pg_is_in_recovery pg_catalog.pg_locks "
    "pg_catalog.pg_namespace pg_catalog.pg_roles pg_catalog.pg_shdescription pg_catalog.pg_table_is_visible "
    "pg_catalog.pg_type pg_catalog.txid_current pg_catalog.version "
    # not in 9.3.4
    "sleep pg_sleep pg_terminate_backend pg_cancel_backend pg_reload_conf lo_import lo_export pg_read_file "
    "pg_read_binary_file pg_ls_dir copy_from copy_to read_csv read_json parquet_files"
)

# Entries of `functions()` that are operators, not names a token can spell.
OPERATORS = frozenset({":", "<<", "<<=", ">>", ">>="})

# Schemas whose names are refused as words: their tables are the Postgres catalog emulation.
REFUSED_SCHEMAS = frozenset({"pg_catalog", "information_schema"})

# Keywords (not functions) that may stand before `(` in a SELECT: clauses, set operations, joins,
# frames, and type names with a size (`decimal(10, 2)`, `geohash(5c)`). None is a function name.
KEYWORDS_BEFORE_PAREN = _names(
    "select from where as on using join inner outer left right full cross asof lt splice exists any some all "
    "union except intersect distinct then else when end over partition by order group having window rows range "
    "groups preceding following current row filter fill sample align to latest limit offset timestamp with "
    "is null asc desc decimal numeric geohash varchar char array values"
)


def is_refused_name(name: str) -> bool:
    """A (lower-cased, unquoted) name that names a refused function or catalog schema."""
    return name in REFUSED_FUNCTIONS or name in REFUSED_SCHEMAS or name.split(".", 1)[0] in REFUSED_SCHEMAS
