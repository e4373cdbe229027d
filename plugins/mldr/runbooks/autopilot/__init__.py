"""Autopilot: automated, opt-in failover on holistic detection (issue 16).

`decision` is the pure rule, `policy` the policy in force and autopilot's memory in the control
store, `evaluate` one look-decide-act round (`mldr autopilot evaluate`, the `dr_autopilot` DAG).
"""
