"""On-call notifications through Airflow's notifier mechanism (``airflow.sdk.BaseNotifier``).

``on_call.OnCallNotifier`` is the one path: the DAGs' failure callback and ``alert_on_call``
both go through it. It reads the Variable ``airsage_on_call`` when it runs (never at parse
time) and sends the payload to every configured target: ``webhook.WebhookNotifier`` (POST of
the JSON payload) and ``sns.OnCallSnsNotifier`` (the amazon provider's SnsNotifier).
"""
