"""The users' client: the `nntracker` command and the REST API client it drives.

It talks to a running NN Tracker over HTTP (`api.ApiClient`: token, retries, clear errors);
only the commands that run the local stack itself (`up`, `db status`, `db dump`/`restore`)
reach into `infra`, and only when called.
"""
