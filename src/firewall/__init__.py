"""The order firewall: a TWS API proxy that judges every order against the plan in force.

Bots connect to it as they would to the Gateway; it relays every message unchanged, both ways,
except a placeOrder (or exerciseOptions) the rules do not allow: that one never reaches the
Gateway, and the client gets the Gateway's usual rejection for its order id. Modules, lowest first:

* `rules`: the rules, pure (an order, an authority and a book view in; a refusal reason or None out);
* `book`: positions and working orders as the Gateway reports them, updated from its messages;
* `plan`: the authority derived from the bytes of state/plan_in_force.json, re-read when they change;
* `decisions`: the journal, one JSON line per order decision;
* `upstream`: the firewall's own API session (positions, open orders, contract ids, 1100);
* `proxy`: the asyncio relay, one per client connection;
* `__main__`: the CLI the firewall container runs.
"""
