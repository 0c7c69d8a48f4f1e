"""What a legacy-overlay engine holds and hears (VXLAN peer entries, serf gossip),
read through a node handle."""
