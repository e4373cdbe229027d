"""The DR drill's parts: load generator, fault injection, measurements, report, persisted state.

The procedure that uses them is `mldr.runbooks.drill`; the measurements are pure functions
(`mldr.drill.metrics`) over what the client observed, so they are tested on synthetic timelines.
"""
