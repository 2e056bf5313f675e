"""Plain SQL for the rows every sign-in writes and reads (issue 11).

The ORM's insert path (`Model.save` → `_save_table` → `SQLInsertCompiler`) and its query
compilation cost more CPU than the database spends on these statements. These helpers keep the
ORM's semantics for the models they are used on — every field's `pre_save` (auto_now, DOT's token
checksum) and `get_db_prep_save` (datetimes, UUIDs, JSON) — and skip the machinery. What they do
not do: send pre/post_save or delete signals. Only use them on models nothing listens to
(DOT's Grant, AccessToken, RefreshToken, IDToken; RedeemedCode, ClientSession, AuditEvent);
tests/oidc/test_fast_path.py checks that no receiver exists.
"""

from __future__ import annotations

from functools import cache

from django.db import connection
from django.db.models import Model


@cache
def _insert_plan(model: type[Model], vendor: str) -> tuple[str, tuple, bool]:
    meta = model._meta
    fields = tuple(f for f in meta.concrete_fields if not f.primary_key or not getattr(f, "db_returning", False))
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    pk = meta.pk
    returning = bool(getattr(pk, "db_returning", False)) and connection.features.can_return_columns_from_insert
    sql = f"INSERT INTO {qn(meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608 (metadata only)
    if returning:
        sql += f" RETURNING {qn(pk.column)}"
    return sql, fields, returning


def insert(instance: Model) -> Model:
    """INSERT `instance` as `instance.save()` would (same column values), without signals."""
    sql, fields, returning = _insert_plan(type(instance), connection.vendor)
    params = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if getattr(instance._meta.pk, "db_returning", False):
            pk = cursor.fetchone()[0] if returning else cursor.lastrowid
            setattr(instance, instance._meta.pk.attname, pk)
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


@cache
def _select_plan(model: type[Model], column: str) -> tuple[str, tuple]:
    meta = model._meta
    qn = connection.ops.quote_name
    names = tuple(f.attname for f in meta.concrete_fields)
    columns = ", ".join(qn(f.column) for f in meta.concrete_fields)
    return f"SELECT {columns} FROM {qn(meta.db_table)} WHERE {qn(column)} = %s", names  # noqa: S608


def get_by(model: type[Model], column: str, value) -> Model | None:
    """The row whose `column` equals `value` (a unique column), as a model instance, or None."""
    sql, names = _select_plan(model, column)
    with connection.cursor() as cursor:
        cursor.execute(sql, [value])
        row = cursor.fetchone()
    if row is None:
        return None
    converters = _converters(model)
    if converters:
        row = list(row)
        for index, convert in converters:
            row[index] = convert(row[index])
    return model.from_db(connection.alias, names, row)


@cache
def _converters(model: type[Model]) -> tuple:
    """What the ORM applies to values read back (the backend's and the fields' from_db_value)."""
    result = []
    for index, field in enumerate(model._meta.concrete_fields):
        expression = field.get_col(model._meta.db_table)
        backend = connection.ops.get_db_converters(expression)
        own = [field.from_db_value] if hasattr(field, "from_db_value") else []
        functions = backend + own
        if functions:
            result.append((index, _chain(functions, expression)))
    return tuple(result)


def _chain(functions, expression):
    def convert(value):
        for function in functions:
            value = function(value, expression, connection)
        return value

    return convert


def delete_by_pk(model: type[Model], pk) -> None:
    """DELETE one row by primary key (no Collector: nothing references these rows, no signals)."""
    execute_batch([delete_statement(model, pk)])


def get_joined(model: type[Model], column: str, value, fk: str) -> Model | None:
    """Like get_by, with the row that foreign key `fk` points to read in the same query and attached
    (`instance.<fk>`), as select_related would; None when there is no such row."""
    sql, names, related, related_names = _joined_plan(model, column, fk)
    with connection.cursor() as cursor:
        cursor.execute(sql, [value])
        row = cursor.fetchone()
    if row is None:
        return None
    own, other = list(row[: len(names)]), list(row[len(names):])
    for values, m in ((own, model), (other, related)):
        for index, convert in _converters(m):
            values[index] = convert(values[index])
    instance = model.from_db(connection.alias, names, own)
    setattr(instance, fk, related.from_db(connection.alias, related_names, other))
    return instance


@cache
def _joined_plan(model: type[Model], column: str, fk: str):
    qn = connection.ops.quote_name
    field = model._meta.get_field(fk)
    related = field.related_model
    own = ", ".join(f"a.{qn(f.column)}" for f in model._meta.concrete_fields)
    other = ", ".join(f"b.{qn(f.column)}" for f in related._meta.concrete_fields)
    sql = (f"SELECT {own}, {other} FROM {qn(model._meta.db_table)} a "  # noqa: S608 (metadata only)
           f"JOIN {qn(related._meta.db_table)} b ON b.{qn(field.target_field.column)} = a.{qn(field.column)} "
           f"WHERE a.{qn(column)} = %s")
    return (sql, tuple(f.attname for f in model._meta.concrete_fields), related,
            tuple(f.attname for f in related._meta.concrete_fields))


@cache
def _upsert_plan(model: type[Model], unique: tuple[str, ...], update: tuple[str, ...]) -> tuple[str, tuple]:
    sql, fields, _returning = _insert_plan(model, connection.vendor)
    sql = sql.split(" RETURNING ", 1)[0]
    qn = connection.ops.quote_name
    meta = model._meta
    conflict = ", ".join(qn(meta.get_field(name).column) for name in unique)
    updates = ", ".join(f"{qn(meta.get_field(name).column)} = EXCLUDED.{qn(meta.get_field(name).column)}"
                        for name in update)
    return f"{sql} ON CONFLICT ({conflict}) DO UPDATE SET {updates}", fields


def upsert(instance: Model, *, unique: tuple[str, ...], update: tuple[str, ...]) -> None:
    """INSERT … ON CONFLICT (unique) DO UPDATE SET update = the new values — what
    `bulk_create([instance], update_conflicts=True, unique_fields=…, update_fields=…)` sends (SQLite
    and PostgreSQL), without signals. The instance's primary key is not set."""
    execute_batch([upsert_statement(instance, unique=unique, update=update)])


def upsert_statement(instance: Model, *, unique: tuple[str, ...], update: tuple[str, ...]) -> tuple[str, list]:
    sql, fields = _upsert_plan(type(instance), unique, update)
    return sql, [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]


def insert_statement(instance: Model) -> tuple[str, list]:
    """The INSERT of `insert()` for a row whose primary key nobody needs back (not set on it)."""
    sql, fields, _returning = _insert_plan(type(instance), connection.vendor)
    instance._state.adding = False
    instance._state.db = connection.alias
    return sql.split(" RETURNING ", 1)[0], [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]


def delete_statement(model: type[Model], pk) -> tuple[str, list]:
    qn = connection.ops.quote_name
    return f"DELETE FROM {qn(model._meta.db_table)} WHERE {qn(model._meta.pk.column)} = %s", [pk]  # noqa: S608


def execute_batch(statements: list[tuple[str, list]]) -> None:
    """Run statements that return nothing, in order. On PostgreSQL in one round trip: Django's
    psycopg cursors bind client-side (ClientCursor), so the values are merged by psycopg itself
    (`mogrify`, its quoting) and the statements sent as one; elsewhere one execute each."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(statements) > 1:
            raw = cursor.cursor
            cursor.execute("; ".join(raw.mogrify(sql, params) for sql, params in statements))
        else:
            for sql, params in statements:
                cursor.execute(sql, params)
