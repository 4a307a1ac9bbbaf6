"""purchases_fan_page_state(): what a signed-in page of Buy buttons reads on every view.

The header's credit figures (balance, credits expiring within the window and the
soonest expiry) and the fan's live purchases among some tracks, as one row. A PL/pgSQL
function keeps its query's plan for the connection's life: planning that four-table
query cost PostgreSQL five times what running it does, on every page view. Plans are
per connection, so this is safe behind PgBouncer in transaction mode (no prepared
statements). purchases.selectors calls it; tests hold it to HEADER_CREDITS_SQL and
the LIVE rule.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION purchases_fan_page_state(
    p_fan bigint, p_now timestamptz, p_soon timestamptz, p_tracks bigint[]
) RETURNS TABLE (
    balance bigint, expiring bigint, expiring_at timestamptz, ids bigint[], statuses text[]
) LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT h.*, p.* FROM (
        SELECT (COALESCE((SELECT w.balance FROM credits_wallet w WHERE w.user_id = p_fan), 0)
                - COALESCE(SUM(l.remaining) FILTER (WHERE l.expires_at <= p_now), 0))::bigint,
               COALESCE(SUM(l.remaining) FILTER (WHERE l.expires_at > p_now), 0)::bigint,
               MIN(l.expires_at) FILTER (WHERE l.expires_at > p_now)
        FROM credits_lot l
        WHERE l.user_id = p_fan AND l.remaining > 0 AND l.expires_at <= p_soon
    ) AS h CROSS JOIN (
        SELECT array_agg(pp.track_id::bigint), array_agg(pp.status::text)
        FROM purchases_purchase pp
        WHERE pp.fan_id = p_fan AND pp.track_id = ANY(p_tracks)
          AND (pp.status IN ('pending', 'completed', 'disputed')
               OR (pp.status = 'failed' AND pp.flag = ''))
    ) AS p;
END
$$;
"""

DROP = "DROP FUNCTION IF EXISTS purchases_fan_page_state(bigint, timestamptz, timestamptz, bigint[]);"


class Migration(migrations.Migration):
    dependencies = [("purchases", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, DROP)]
