"""A separate process that uses the store, for the lock and kill tests (run as a script).

store_worker.py STATE KEY insert N TAG     N one-row transactions, each opening the store anew
store_worker.py STATE KEY hang-in-write READY    write many rows, touch READY, then wait forever
store_worker.py STATE KEY hold SECONDS READY     hold the store open for SECONDS
"""

import sys
import time
from pathlib import Path

from onetable.warehouse.ledger import transaction
from onetable.warehouse.store import StoreBusyError, StoreSettings, open_store


def main(state: str, key: str, command: str, *args: str) -> int:
    settings = StoreSettings(state_dir=Path(state), key=key, lock_timeout_s=float(60))
    if command == "insert":
        count, tag = int(args[0]), args[1]
        for i in range(count):
            with open_store(settings) as con, transaction(con, run_id=f"{tag}-{i}", stage="test"):
                con.execute("CREATE TABLE IF NOT EXISTS landing.events (tag VARCHAR, i INTEGER)")
                con.execute("INSERT INTO landing.events VALUES (?, ?)", [tag, i])
        return 0
    if command == "hang-in-write":
        with open_store(settings) as con:
            con.execute("BEGIN")
            con.execute("INSERT INTO landing.big SELECT i, 'row ' || i FROM range(2000000) t(i)")
            Path(args[0]).touch()
            time.sleep(600)
        return 1
    if command == "hold":
        settings = StoreSettings(state_dir=Path(state), key=key, lock_timeout_s=0.5)
        try:
            with open_store(settings):
                Path(args[1]).touch()
                time.sleep(float(args[0]))
        except StoreBusyError as exc:
            print(exc)
            return 3
        return 0
    raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
