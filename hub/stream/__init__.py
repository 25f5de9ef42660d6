"""Case events out: the event view of the timeline (`events`), one reader per process fanned out to the SSE
subscribers (`fanout`) and the MQTT publisher that runs once across replicas (`mqtt_events`)."""
