"""The web console: Tengine's screens (events, executions, jobnet monitor, job detail, jobnets)
and a JSON API under /api, on FastAPI. `app.create_app(settings)` makes the app,
`server.run_console(settings)` serves it."""
