"""For You: a personal, explainable ranking of local and federated clips.

- :mod:`.interest`: how signals become interests (weights per signal, decay); pure.
- :mod:`.rank`: the scoring model, diversity and reasons; pure.
- :mod:`.signals`: recording what players report and what people do (I/O).
- :mod:`.candidates`: the candidate sources and the durable refresh of each account's list.
- :mod:`.feed`: serving a page of an account's list.
"""
