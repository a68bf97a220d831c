"""Pure ActivityPub protocol code: no database, no network.

* :mod:`activitypub.errors`: the exception hierarchy (and the 400/401 mapping);
* :mod:`activitypub.keys`: RSA and Ed25519 keys, PEM and FEP-521a Multikey;
* :mod:`activitypub.digest`: ``Digest`` and ``Content-Digest`` headers;
* :mod:`activitypub.signatures`: HTTP signatures, RFC 9421 and draft-cavage;
* :mod:`activitypub.objects`: JSON-LD shapes of actors, clips and activities;
* :mod:`activitypub.integrity`: object integrity proofs (FEP-8b32, eddsa-jcs-2022);
* :mod:`activitypub.consent`: signed likeness consent objects (grants, revocations).

Nothing is imported here, so importing one module stays cheap.
"""
