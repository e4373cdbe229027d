"""The schedule tester: randomized, seeded, replayable fault schedules against the sandbox.

`schedule` decides what happens (operations, crashes, outages, partitions, a stalled control
store), `writers` plays the clients, `invariants` says what must hold, `runner` runs a schedule
and checks it. `bench/chaos.py` is the command; tests/e2e/test_chaos.py runs CI's seeds.
"""
