"""The contractor upload page: one-time links made with ``!アップロードURL``, served on the internet
side; plain HTML forms (no JavaScript needed), progress shown when JavaScript is on. One file
per route (form.py, submit.py), the server and what every page shares in server.py and html.py."""
