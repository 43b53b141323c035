import { redirect } from "next/navigation";
import { pageUser } from "@/app/_server/auth";

export default async function Home() {
  await pageUser();
  redirect("/documents");
}
