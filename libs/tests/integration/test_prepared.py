"""Prepared statements (trcommon.db.Prepared) against a real PostgreSQL: the rows, the errors and a lost connection
read exactly as through SQLAlchemy's Connection.execute."""
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.exc import IntegrityError

from trcommon.db import Prepared, UnitOfWork, drop_database, ensure_database, make_engine
from trcommon.errors import DependencyUnavailable
from trcommon.testing import test_database_url as database_url_for

metadata = sa.MetaData()
things = sa.Table("things", metadata, sa.Column("thing_id", UUID(as_uuid=False), primary_key=True),
                  sa.Column("n", sa.Integer, nullable=False), sa.Column("label", sa.Text),
                  sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now()))

ADD = Prepared(sa.insert(things).values(thing_id=sa.bindparam("p_id"), n=1, label=sa.bindparam("p_label"))
               .returning(*things.c))
BUMP = Prepared(sa.update(things).where(things.c.thing_id == sa.bindparam("p_id"),
                                        sa.or_(things.c.label == "a", things.c.label == "b"))
                .values(n=things.c.n + 1).returning(things.c.thing_id, things.c.n, sa.func.now().label("db_now")))
GET = Prepared(sa.select(things).where(things.c.thing_id == sa.bindparam("p_id")))


@pytest.fixture(scope="module")
def engine(pg_server_url):
    url = database_url_for(pg_server_url, f"prepared_{uuid.uuid4().hex[:8]}")
    ensure_database(url)
    engine = make_engine(url, pool_size=2, max_overflow=0)
    metadata.create_all(engine)
    yield engine
    engine.dispose()
    drop_database(url)


def test_rows_read_as_sqlalchemy_rows_do(engine):
    thing = str(uuid.uuid4())
    with UnitOfWork(engine) as uow:
        added = ADD.first(uow.conn, {"p_id": thing, "p_label": "a"})
        uow.commit()
    with UnitOfWork(engine, autocommit=True) as uow:
        bumped = BUMP.first(uow.conn, {"p_id": thing})
        via_sqlalchemy = uow.conn.execute(sa.select(things).where(things.c.thing_id == thing)).first()
    assert added == {"thing_id": thing, "n": 1, "label": "a", "at": added["at"]}
    assert added.thing_id == thing and added._mapping["n"] == 1 and type(added.thing_id) is str
    assert bumped.n == 2 and bumped.db_now >= added.at
    assert dict(via_sqlalchemy._mapping) == {**added, "n": 2}


def test_no_row_is_none_and_a_statement_without_rows_is_an_empty_list(engine):
    with UnitOfWork(engine, autocommit=True) as uow:
        assert GET.first(uow.conn, {"p_id": str(uuid.uuid4())}) is None
        assert Prepared(sa.update(things).where(things.c.n < 0).values(n=0)).rows(uow.conn) == []


def test_a_statement_first_run_without_rows_still_reads_its_later_rows_with_their_names(engine):
    """The column names are read from the first result and kept: a first result with no row must not leave a
    later result without them, nor a statement without rows start reading rows."""
    get = Prepared(sa.select(things.c.thing_id, things.c.label).where(things.c.thing_id == sa.bindparam("p_id")))
    touch = Prepared(sa.update(things).where(things.c.thing_id == sa.bindparam("p_id")).values(label="c"))
    thing = str(uuid.uuid4())
    with UnitOfWork(engine, autocommit=True) as uow:
        assert get.rows(uow.conn, {"p_id": thing}) == []
        assert touch.rows(uow.conn, {"p_id": thing}) == []
        ADD.first(uow.conn, {"p_id": thing, "p_label": "a"})
        assert touch.rows(uow.conn, {"p_id": thing}) == []
        for _ in range(8):          # past psycopg's prepare threshold: the server-side prepared statement too
            assert get.rows(uow.conn, {"p_id": thing}) == [{"thing_id": thing, "label": "c"}]


def test_a_statement_runs_in_the_unit_of_works_transaction(engine):
    thing = str(uuid.uuid4())
    with UnitOfWork(engine) as uow:
        ADD.first(uow.conn, {"p_id": thing, "p_label": "a"})
        assert GET.first(uow.conn, {"p_id": thing}).label == "a"      # seen inside the transaction
    with UnitOfWork(engine, autocommit=True) as uow:                   # rolled back: never committed
        assert GET.first(uow.conn, {"p_id": thing}) is None


def test_database_errors_are_sqlalchemys_own(engine):
    thing = str(uuid.uuid4())
    with UnitOfWork(engine, autocommit=True) as uow:
        ADD.first(uow.conn, {"p_id": thing, "p_label": "a"})
        with pytest.raises(IntegrityError) as raised:
            ADD.first(uow.conn, {"p_id": thing, "p_label": "a"})
    assert raised.value.orig.sqlstate == "23505"


def test_an_in_list_is_refused(engine):
    with UnitOfWork(engine, autocommit=True) as uow, pytest.raises(TypeError):
        Prepared(sa.select(things).where(things.c.label.in_(["a", "b"]))).rows(uow.conn)


def test_a_connection_lost_under_a_statement_is_a_503_and_the_next_call_gets_a_fresh_one(engine):
    with UnitOfWork(engine, autocommit=True) as uow:
        GET.first(uow.conn, {"p_id": str(uuid.uuid4())})         # the pool now holds a connection
    admin = sa.create_engine(engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": engine.url.database})
    admin.dispose()
    with pytest.raises(DependencyUnavailable):
        with UnitOfWork(engine, autocommit=True) as uow:
            GET.first(uow.conn, {"p_id": str(uuid.uuid4())})
    with UnitOfWork(engine, autocommit=True) as uow:
        assert GET.first(uow.conn, {"p_id": str(uuid.uuid4())}) is None


def test_the_sql_is_compiled_once(engine):
    stmt = Prepared(sa.select(things).where(things.c.thing_id == sa.bindparam("p_id")))
    with UnitOfWork(engine, autocommit=True) as uow:
        first = stmt._sql(uow.conn)
        stmt.rows(uow.conn, {"p_id": str(uuid.uuid4())})
        assert stmt._sql(uow.conn) is first and "%(p_id)s" in first[0]


def test_a_list_of_strings_cast_to_an_array_reads_back_exactly(engine):
    """A text-like array parameter goes as one array literal: every item arrives as it was, whatever it holds."""
    from sqlalchemy.dialects.postgresql import ARRAY
    echo = Prepared(sa.select(sa.cast(sa.bindparam("p_labels"), ARRAY(sa.Text)).label("labels")))
    tricky = ['plain', 'a "quoted" one', 'back\\slash', 'comma, and {braces}', '', 'NULL', ' spaced ', 'ünï']
    with UnitOfWork(engine, autocommit=True) as uow:
        assert echo._sql(uow.conn)[2] == ("p_labels",)
        for labels in (tricky, [], ["one"]):
            assert echo.first(uow.conn, {"p_labels": labels}).labels == labels


def test_a_uuid_array_parameter_finds_the_rows_it_names(engine):
    from sqlalchemy.dialects.postgresql import ARRAY
    ids = [str(uuid.uuid4()) for _ in range(3)]
    with UnitOfWork(engine) as uow:
        for i in ids:
            ADD.first(uow.conn, {"p_id": i, "p_label": "u"})
        uow.commit()
    some = Prepared(sa.select(things.c.thing_id).where(
        things.c.thing_id == sa.func.any(sa.cast(sa.bindparam("p_ids"), ARRAY(UUID)))).order_by(things.c.thing_id))
    with UnitOfWork(engine, autocommit=True) as uow:
        assert [r.thing_id for r in some.rows(uow.conn, {"p_ids": ids[:2] + [str(uuid.uuid4())]})] == sorted(ids[:2])
        # Not strings (UUID objects): psycopg dumps the list itself, with the same answer.
        assert [r.thing_id for r in some.rows(uow.conn, {"p_ids": [uuid.UUID(i) for i in ids[:2]]})] == sorted(ids[:2])


def test_an_array_parameter_used_without_its_cast_is_left_to_psycopg(engine):
    from sqlalchemy.dialects.postgresql import ARRAY
    mixed = Prepared(sa.select(sa.cast(sa.bindparam("p_labels"), ARRAY(sa.Text)).label("cast"),
                               sa.func.cardinality(sa.bindparam("p_labels")).label("n")))
    with UnitOfWork(engine, autocommit=True) as uow:
        assert mixed._sql(uow.conn)[2] == ()
        row = mixed.first(uow.conn, {"p_labels": ["a", "b"]})
        assert (row["cast"], row["n"]) == (["a", "b"], 2)
