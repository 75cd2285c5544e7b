"""Reading a study database directly, to check that a command wrote nothing."""

from __future__ import annotations


def dump(url: str) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table, as sorted tuples of reprs."""
    from sqlalchemy import MetaData
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            return {
                name: sorted(
                    tuple(repr(v) for v in row) for row in connection.execute(table.select())
                )
                for name, table in metadata.tables.items()
            }
    finally:
        engine.dispose()
