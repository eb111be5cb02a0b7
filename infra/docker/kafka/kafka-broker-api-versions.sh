#!/bin/sh
# The official image's tool of this name (docker-compose.yml's health check calls it): lists
# the API versions each broker of --bootstrap-server supports; fails when none answers.
# A small client JVM: the check runs every few seconds beside the broker.
exec java -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
  -Dlog4j.configuration=file:/opt/kafka/config/defaults/tools-log4j.properties \
  -cp "/opt/kafka/libs/*" kafka.admin.BrokerApiVersionsCommand "$@"
