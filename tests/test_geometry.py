"""MySQL's spatial types copied as EWKB (the SRID inside), exact point by point, by each
reader, on the real MariaDB and the PostgreSQL stand-in (BYTEA holding the EWKB, as no
PostGIS is there); Redshift lands them as GEOMETRY through ST_GeomFromEWKB (the golden SQL
in test_redshift_sql.py; only the live smoke test proves Redshift reads these bytes)."""
from __future__ import annotations

import json
import struct

from tests.conftest import Pipe
from tests.test_readers import readers_of

DDL = ("CREATE TABLE places (id INT NOT NULL PRIMARY KEY, p POINT, ls LINESTRING, pg POLYGON, mp MULTIPOINT,"
       " mls MULTILINESTRING, mpg MULTIPOLYGON, gc GEOMETRYCOLLECTION, g GEOMETRY)")
ROW_1 = ("INSERT INTO places VALUES (1, ST_GeomFromText('POINT(1.5 2.25)', 4326),"
         " ST_GeomFromText('LINESTRING(0 0, 1 1, -2.5 3e10)'),"
         " ST_GeomFromText('POLYGON((0 0, 0 1, 1 1, 1 0, 0 0), (0.2 0.2, 0.2 0.4, 0.4 0.4, 0.2 0.2))', 3857),"
         " ST_GeomFromText('MULTIPOINT(1 2, 3 4)'), ST_GeomFromText('MULTILINESTRING((0 0, 1 1), (2 2, 3 3))', 4326),"
         " ST_GeomFromText('MULTIPOLYGON(((0 0, 0 1, 1 1, 0 0)), ((5 5, 5 6, 6 6, 5 5)))'),"
         " ST_GeomFromText('GEOMETRYCOLLECTION(POINT(9 9), LINESTRING(0 0, -1e-300 1.7976931348623157e308))', 4326),"
         " ST_GeomFromText('POINT(-0.0 123456.789)'))")


def _ewkb_point(x: float, y: float, srid: int) -> bytes:
    """A POINT's EWKB, written here from its definition (not by ferry's code)."""
    return struct.pack("<BII2d", 1, 1 | 0x20000000, srid, x, y) if srid else struct.pack("<BI2d", 1, 1, x, y)


def test_both_readers_give_the_same_ewkb(pipe: Pipe) -> None:
    """DuckDB's extension and the connector both hand over MySQL's stored geometry; the
    batches ferry makes of them are equal, column by column."""
    from common.source import duck
    from tests.test_readers import LOTS, SOURCE, _both

    pipe.execute(DDL, ROW_1, "INSERT INTO places (id) VALUES (2)")
    schema, a, b, _, _ = _both(pipe, "places")
    assert {c.kind for c in schema.columns[1:]} == {"geometry"}
    assert duck.why_not(SOURCE, schema, LOTS) is None
    assert a.num_rows == 2 and a.equals(b)
    assert a.column("p")[0].as_py() == _ewkb_point(1.5, 2.25, 4326)


def test_every_spatial_type_is_copied_point_by_point_and_verified(pipe: Pipe, workers: list) -> None:
    """A geometry value may be 1 MB (Redshift's GEOMETRY limit), so at the default batch_mb
    the connector reads such a table (DuckDB would hold 2,048 rows of declared width)."""
    pipe.execute(DDL, ROW_1, "INSERT INTO places (id) VALUES (2)")
    # A line of 3,000 points (48 KB): past Redshift's TO_HEX window, so verify compares its ends.
    line = ", ".join(f"{i} {i * 0.5}" for i in range(3000))
    pipe.execute(f"INSERT INTO places (id, ls, g) VALUES (3, ST_GeomFromText('LINESTRING({line})', 4326),"
                 f" ST_GeomFromText('POINT(7 8)', 4326))")
    pipe.write({"places": {}})
    result = pipe.sync("--wait")
    assert result.code == 0, result.stderr
    assert pipe.assert_synced("places") == 3  # MySQL's own ST_SRID and ST_AsWKB against the target's EWKB
    assert readers_of(workers, pipe.table("places")) == {"connector"}
    pg = pipe.pg()
    ref = f'"{pipe.db}".places'
    types = dict(pg.execute("SELECT column_name, data_type FROM information_schema.columns"
                            " WHERE table_schema = %s AND table_name = 'places'", [pipe.db]).fetchall())
    assert {types[c] for c in ("p", "ls", "pg", "mp", "mls", "mpg", "gc", "g")} == {"bytea"}
    p, g = pg.execute(f"SELECT p, g FROM {ref} WHERE id = 1").fetchone()
    assert bytes(p) == _ewkb_point(1.5, 2.25, 4326)
    assert bytes(g) == _ewkb_point(-0.0, 123456.789, 0)  # SRID 0: plain WKB, -0.0 kept
    assert pg.execute(f"SELECT p, ls, gc FROM {ref} WHERE id = 2").fetchone() == (None, None, None)
    # ferry verify agrees, and finds a coordinate changed in the target.
    out = pipe.ferry("verify", "-p", pipe.name, "-t", pipe.table("places"), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert any("column ls: compared by length and the first and last 32,767 bytes" in n
               for n in json.loads(out.stdout)["notes"])
    changed = _ewkb_point(1.5, 2.5, 4326)
    pg.execute(f"UPDATE {ref} SET p = %s WHERE id = 1", [changed])
    out = pipe.ferry("verify", "-p", pipe.name, "-t", pipe.table("places"), "--json")
    doc = json.loads(out.stdout)
    assert out.returncode == 1 and [r for d in doc["differences"] for r in d["rows"]] == [
        {"key": "1", "what": "differs"}], doc
