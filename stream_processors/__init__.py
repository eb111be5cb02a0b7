"""The Faust app of NN Tracker: agents that persist events, keep tag aggregates and feed nnt.live."""
