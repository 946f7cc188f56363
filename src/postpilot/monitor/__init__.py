"""The monitor: per-pass figures, windowed summaries, Prometheus exposition, alert rules with
firing/resolved state, and signed webhooks for alerts and delivery events.

`figures` and `summary` are pure (numbers in, numbers out), `alerts` decides purely and keeps
its state through `store`, `webhooks` signs and sends in the background, and `service.Monitor`
ties them to a runtime as one pass observer plus an evaluation loop."""
