"""The demo: `manage.py load_demo` loads a small corpus, logins, a campaign, a critic, a
student base model and a teacher, through every app's services. It sits above every
app, so it may use them all; nothing imports it."""
