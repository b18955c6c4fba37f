"""The web console for supervisors and auditors (`/console/`): server-rendered pages in
simplified Chinese over the same application service and read models as the API."""
