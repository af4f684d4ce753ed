# The login frontends' shared SSH host key (seed 000: every frontend presents the same keys, so a
# client's known_hosts entry for the VIP holds whichever frontend answers). Assigned in top.sls
# to the frontends only; the lab's example key: make your own (ssh-keygen -t ed25519) and keep
# it in an encrypted pillar (gpg renderer).
secrets:
  ssh_host_keys:
    ed25519: |
      -----BEGIN OPENSSH PRIVATE KEY-----
      b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
      QyNTUxOQAAACA1WrmdWiCQZxQd8PkI3lDTdb8ZkO6TL7eCUmCvmJOtXQAAAJg8r87QPK/O
      0AAAAAtzc2gtZWQyNTUxOQAAACA1WrmdWiCQZxQd8PkI3lDTdb8ZkO6TL7eCUmCvmJOtXQ
      AAAEADCJjh0vyVKvv4by791PqHX0u7bX3nbWDt4uaAla17yTVauZ1aIJBnFB3w+QjeUNN1
      vxmQ7pMvt4JSYK+Yk61dAAAAFGhwY25ldC1sYWItZnJvbnRlbmRzAQ==
      -----END OPENSSH PRIVATE KEY-----
