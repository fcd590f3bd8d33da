# The seed tutorial's classifier (examples/seed_mlp.py registers MyAwesomeModel).
model = dict(type="MyAwesomeModel", layers=2, activation="relu")
