"""The export of calls and tickets to the provincial 12345 platform (Zhanjiang 12345 rules, art. 19): the records
(`records`), reading them by time window (`reading`), the cursor's position (`position`), the HTTPS POST (`platform`)
and the scheduled push inside the service (`pusher`). The schema and the protocol: docs/export.md."""
