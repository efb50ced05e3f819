"""The servers the SQL-connector and scale-out tests use are up (tests/services.sh starts them)."""

import pytest
import redis
import sqlalchemy as sa


@pytest.mark.services
def test_postgresql(postgres_url):
    with sa.create_engine(postgres_url).connect() as con:
        assert con.execute(sa.text("SELECT 1")).scalar() == 1


@pytest.mark.services
def test_mariadb(mariadb_url):
    with sa.create_engine(mariadb_url).connect() as con:
        # the MySQL connector is tested against MariaDB, the server the departments run
        assert "MariaDB" in con.execute(sa.text("SELECT VERSION()")).scalar()
        assert con.execute(sa.text("SELECT 1")).scalar() == 1


@pytest.mark.services
def test_redis(redis_url):
    client = redis.Redis.from_url(redis_url)
    assert client.ping()
